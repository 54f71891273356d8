# bench_transport: unary calls/s and server-stream messages/s of the server transport with
# the test service in-process. Built, never registered with ctest (timing is not a test).
if(EXISTS ${CMAKE_SOURCE_DIR}/server/transport/CMakeLists.txt
   AND EXISTS ${CMAKE_SOURCE_DIR}/tests/proto/proto.cmake)
  add_executable(bench_transport ${CMAKE_CURRENT_LIST_DIR}/bench_transport.c)
  target_include_directories(bench_transport PRIVATE ${SLUICE_TEST_INCLUDES})
  target_link_libraries(bench_transport PRIVATE sluice_testsvc)
  sluice_target_warnings(bench_transport)
endif()
