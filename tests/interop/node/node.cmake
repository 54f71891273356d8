# Node.js (@grpc/grpc-js + @grpc/proto-loader, installed by scripts/install-deps.sh with
# `npm ci`) against a real sluiced on the fake provider. Always registered: a machine
# without node fails this test rather than skipping it.
find_program(SLUICE_NODE node)
if(NOT SLUICE_NODE)
  set(SLUICE_NODE node)
endif()
add_test(NAME service_interop_node
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/interop/run_with_sluiced.py
          ${CMAKE_BINARY_DIR} -- ${SLUICE_NODE} ${CMAKE_CURRENT_LIST_DIR}/test_service_interop.js)
set_tests_properties(service_interop_node PROPERTIES TIMEOUT 180 LABELS "interop;e2e")
