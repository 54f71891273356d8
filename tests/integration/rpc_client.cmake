# The client call runtime and generated stubs against a real Python grpcio server
# (tests/interop/python/test_server.py, started by the test itself on 127.0.0.1:0).
sluice_test(test_rpc_client SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_rpc_client.c
            LIBS sluice_test_proto sluice_rpc sluice_fake_test_util Threads::Threads
            LABELS integration rpc ARGS ${PROTOC} TIMEOUT 300)
