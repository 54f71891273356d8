# Python grpcio (Debian's /usr/bin/python3) against a real sluiced on the fake provider.
add_test(NAME service_interop_python
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/interop/run_with_sluiced.py
          ${CMAKE_BINARY_DIR} -- /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_service_interop.py)
set_tests_properties(service_interop_python PROPERTIES TIMEOUT 180 LABELS "interop;e2e")
