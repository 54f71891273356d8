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

  foreach(t test_transport test_transport_lifecycle test_transport_security)
    sluice_test(${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/${t}.c
                LIBS sluice_testsvc sluice_fake_test_util LABELS integration transport TIMEOUT 300)
  endforeach()

  # tests/CMakeLists.txt only globs one directory level; pull in the Python interop
  # registration from here (it carries an include guard).
  include(${CMAKE_SOURCE_DIR}/tests/interop/python/transport.cmake)
endif()
