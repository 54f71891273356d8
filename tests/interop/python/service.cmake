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

# Quiet streams and long waits on the wire: heartbeats on BatchProcess and AsCompleted, the
# cap on one Wait (pending_task_ids), max_results, omit_text_parts, the CLI waiting again
# and unknown ids per id (sluiced with short intervals).
add_test(NAME streams_python
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/interop/run_with_sluiced.py
          ${CMAKE_BINARY_DIR}
          --config "{\"rpc\": {\"heartbeat_interval_ms\": 300, \"max_wait_ms\": 700}}"
          -- /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_streams.py)
set_tests_properties(streams_python PROPERTIES TIMEOUT 300 LABELS "interop;e2e")

# Keepalive and the client ping policy: a client pinging every 10 s keeps its silent call
# and its idle connection (gRPC's default policy closed them after 30 s), one pinging every
# second is refused, and sluiced closes a connection that leaves its ping unanswered.
add_test(NAME keepalive_python
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/interop/run_with_sluiced.py
          ${CMAKE_BINARY_DIR}
          --config "{\"rpc\": {\"max_wait_ms\": 60000}, \"keepalive\": {\"time_ms\": 1000, \"timeout_ms\": 1000}}"
          -- /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_keepalive.py)
set_tests_properties(keepalive_python PROPERTIES TIMEOUT 300 LABELS "interop;e2e")
