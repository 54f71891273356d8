# The server transport (server/transport) proven on sluice.test.v1.TestService: the test
# service library, the sluice_test_server binary (interop tests) and the CUnit suites.
# sluice_test_proto comes from tests/proto/proto.cmake (included after this file, hence
# the existence check instead of if(TARGET)).
if(EXISTS ${CMAKE_SOURCE_DIR}/server/transport/CMakeLists.txt
   AND EXISTS ${CMAKE_SOURCE_DIR}/tests/proto/proto.cmake)
  add_library(sluice_testsvc STATIC ${CMAKE_CURRENT_LIST_DIR}/testsvc.c
                                    ${CMAKE_CURRENT_LIST_DIR}/test_transport_util.c)
  target_include_directories(sluice_testsvc PUBLIC ${SLUICE_TEST_INCLUDES})
  target_link_libraries(sluice_testsvc PUBLIC sluice_transport sluice_test_proto sluice_rpc)
  sluice_target_warnings(sluice_testsvc)

  add_executable(sluice_test_server ${CMAKE_CURRENT_LIST_DIR}/test_server_main.c)
  target_link_libraries(sluice_test_server PRIVATE sluice_testsvc)
  sluice_target_warnings(sluice_test_server)

  # TSan runs: gRPC/absl are not instrumented. ignore_noninstrumented_modules stops TSan
  # from tracking their memcpy/free through interceptors (false races that each cost a
  # symbolised, suppressed report and slow the run to a crawl); tsan.supp covers what
  # remains (see that file). Races between our own threads are still reported.
  set(SLUICE_TRANSPORT_TSAN_OPTIONS
      "ignore_noninstrumented_modules=1:history_size=7:suppressions=${CMAKE_SOURCE_DIR}/server/transport/tsan.supp")
  foreach(t test_transport test_transport_lifecycle test_transport_security)
    sluice_test(${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/${t}.c
                LIBS sluice_testsvc LABELS integration transport TIMEOUT 300)
    if(SLUICE_TSAN)
      set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT
        "TSAN_OPTIONS=${SLUICE_TRANSPORT_TSAN_OPTIONS}")
    endif()
  endforeach()

  # tests/CMakeLists.txt only globs one directory level; pull in the Python interop
  # registration from here (it carries an include guard).
  include(${CMAKE_SOURCE_DIR}/tests/interop/python/transport.cmake)
endif()
