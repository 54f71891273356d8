# End-to-end: the C SDK against the real sluiced binary and the fake provider.
sluice_test(test_sdk_e2e
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sdk_e2e.c ${CMAKE_CURRENT_LIST_DIR}/sluiced_harness.c
  LIBS sluice sluice_fake_provider sluice_fake_test_util Threads::Threads
  LABELS e2e TIMEOUT 900 WIRES)
add_dependencies(test_sdk_e2e sluiced)
sluice_test(test_crash_resume
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_crash_resume.c ${CMAKE_CURRENT_LIST_DIR}/sluiced_harness.c
  LIBS sluice sluice_fake_provider sluice_fake_test_util PkgConfig::JANSSON Threads::Threads
  LABELS e2e TIMEOUT 900 WIRES)
add_dependencies(test_crash_resume sluiced)
sluice_test(test_batch_split
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_batch_split.c ${CMAKE_CURRENT_LIST_DIR}/sluiced_harness.c
  LIBS sluice sluice_fake_provider sluice_fake_test_util Threads::Threads
  LABELS e2e TIMEOUT 300)
add_dependencies(test_batch_split sluiced)
# The SDK's waits past sluiced's cap on one Wait, unknown ids per id, heartbeats skipped,
# the text sent once, the keepalive option on the wire.
sluice_test(test_sdk_waits
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sdk_waits.c ${CMAKE_CURRENT_LIST_DIR}/sluiced_harness.c
  LIBS sluice sluice_fake_provider sluice_fake_test_util Threads::Threads
  LABELS e2e sdk TIMEOUT 600)
add_dependencies(test_sdk_waits sluiced)
# The SDK through nginx (grpc_pass, TLS, grpc_read_timeout 5 s, client_max_body_size 1m):
# heartbeats, the Wait cap and the SDK's waiting again keep every call below the proxy's
# timeout. Needs Debian's nginx (deploy/packages.txt).
sluice_test(test_sdk_proxy
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sdk_proxy.c ${CMAKE_CURRENT_LIST_DIR}/sluiced_harness.c
          ${CMAKE_CURRENT_LIST_DIR}/nginx_harness.c
  LIBS sluice sluice_fake_provider sluice_fake_test_util Threads::Threads
  LABELS e2e integration proxy TIMEOUT 600)
add_dependencies(test_sdk_proxy sluiced)
# The sluice CLI end to end (Python driver; sluiced and the fake started by the launcher).
set(SLUICE_CLI_E2E /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/interop/run_with_sluiced.py
    ${CMAKE_BINARY_DIR} -- /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_cli.py)
add_test(NAME cli_e2e COMMAND ${SLUICE_CLI_E2E})
set_tests_properties(cli_e2e PROPERTIES TIMEOUT 300 LABELS "e2e;cli")
sluice_test_on_wires(cli_e2e ${SLUICE_CLI_E2E})
# The README's SDK example against the installed SDK (cmake --install + pkg-config). A
# sanitizer build's SDK needs the example built with the same sanitizer.
set(SLUICE_EXAMPLE_CFLAGS "")
if(SLUICE_ASAN)
  set(SLUICE_EXAMPLE_CFLAGS "-fsanitize=address,undefined")
elseif(SLUICE_TSAN)
  set(SLUICE_EXAMPLE_CFLAGS "-fsanitize=thread")
endif()
add_test(NAME sdk_install_example
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/interop/run_with_sluiced.py
          ${CMAKE_BINARY_DIR} -- ${CMAKE_CURRENT_LIST_DIR}/test_sdk_install.sh
          ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR} "${SLUICE_EXAMPLE_CFLAGS}")
set_tests_properties(sdk_install_example PROPERTIES TIMEOUT 180 LABELS "e2e;sdk")

# SDK tests that compile the SDK's sources into the test (not the shared libsluice) with
# the allocators wrapped, so any allocation the SDK makes can be made to fail
# (failmalloc.h); libc, gRPC and protobuf-c keep their own. test_sdk_edges runs against a
# canned server in process (canned_sluice.h).
file(GLOB SLUICE_SDK_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/client/sdk/*.c)
set(SLUICE_FAILMALLOC_WRAP "-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup")
sluice_test(test_sdk_edges
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sdk_edges.c ${CMAKE_CURRENT_LIST_DIR}/canned_sluice.c
          ${CMAKE_CURRENT_LIST_DIR}/failmalloc.c ${SLUICE_SDK_SOURCES}
  LIBS sluice_transport sluice_rpc sluice_proto Threads::Threads
  LABELS e2e sdk TIMEOUT 300)
target_link_options(test_sdk_edges PRIVATE ${SLUICE_FAILMALLOC_WRAP})
# The CLI's option parsing, with the same wrapped allocators.
sluice_test(test_cli_options
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cli_options.c ${CMAKE_SOURCE_DIR}/client/cli/options.c
          ${CMAKE_CURRENT_LIST_DIR}/failmalloc.c
  LIBS PkgConfig::JANSSON LABELS unit cli)
target_link_options(test_cli_options PRIVATE ${SLUICE_FAILMALLOC_WRAP})
# Every public SDK call with each of its allocations failing in turn, against sluiced.
sluice_test(test_sdk_failmalloc
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sdk_failmalloc.c ${CMAKE_CURRENT_LIST_DIR}/sluiced_harness.c
          ${CMAKE_CURRENT_LIST_DIR}/failmalloc.c ${SLUICE_SDK_SOURCES}
  LIBS sluice_rpc sluice_proto sluice_fake_provider sluice_fake_test_util Threads::Threads
  LABELS e2e sdk TIMEOUT 900)
target_link_options(test_sdk_failmalloc PRIVATE ${SLUICE_FAILMALLOC_WRAP})
add_dependencies(test_sdk_failmalloc sluiced)
