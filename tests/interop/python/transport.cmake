# Python grpcio (Debian's /usr/bin/python3, never the pyenv python3 on PATH) against the
# C server transport: sluice_test_server serving TestService and health.
include_guard(GLOBAL)
if(TARGET sluice_test_server)
  add_test(NAME transport_interop_python
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_transport_interop.py
            --server $<TARGET_FILE:sluice_test_server>
            --test-proto ${CMAKE_SOURCE_DIR}/tests/proto/sluice_test.proto
            --grpc-proto-root ${SLUICE_GRPC_PROTO_INCLUDE})
  set_tests_properties(transport_interop_python PROPERTIES TIMEOUT 120
    LABELS "interop;transport")
endif()
