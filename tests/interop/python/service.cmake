# Python grpcio (Debian's /usr/bin/python3) against a real sluiced on the fake provider.
add_test(NAME service_interop_python
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/interop/run_with_sluiced.py
          ${CMAKE_BINARY_DIR} -- /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_service_interop.py)
set_tests_properties(service_interop_python PROPERTIES TIMEOUT 180 LABELS "interop;e2e")

# BatchProcess at its limits: a slow reader of large results, and a batch's own session
# against the tenant's session limit (sluiced started with small limits).
add_test(NAME batch_limits_python
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/interop/run_with_sluiced.py
          ${CMAKE_BINARY_DIR}
          --config "{\"limits\": {\"max_batch_in_flight\": 1, \"max_sessions_per_tenant\": 1}}"
          -- /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_batch_limits.py)
set_tests_properties(batch_limits_python PROPERTIES TIMEOUT 300 LABELS "interop;e2e")

# Regression: strings that are not UTF-8 in every kind of request (a 0xff session name
# crashed sluiced) get INVALID_ARGUMENT naming the field, and sluiced keeps serving.
add_test(NAME invalid_utf8_python
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/interop/run_with_sluiced.py
          ${CMAKE_BINARY_DIR} -- /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_invalid_utf8.py)
set_tests_properties(invalid_utf8_python PROPERTIES TIMEOUT 180 LABELS "interop;e2e")

# Regression: a Start above 65,536 prompts (up to the tenant limit) succeeds, one above the
# limit is refused naming it; a Wait beyond the message limit returns the results that fit
# and names the rest (raw protocol, max_response_bytes, and the CLI following it).
add_test(NAME start_wait_limits_python
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/interop/run_with_sluiced.py
          ${CMAKE_BINARY_DIR}
          --config "{\"limits\": {\"max_open_tasks_per_tenant\": 70000}, \"max_message_bytes\": 4194304}"
          -- /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_start_wait_limits.py)
set_tests_properties(start_wait_limits_python PROPERTIES TIMEOUT 600 LABELS "interop;e2e")
