# sluice_test_proto: the tests-only service sluice.test.v1.TestService (all four call
# kinds) as protobuf-c messages plus protoc-gen-sluice's tables and stubs
# (sluice_test.pb-c.h, sluice_test.sluice.h at the root of ${SLUICE_GEN_DIR}).
# The .pb-c.c is generated code and built without the project's warnings; the .sluice.c
# is built with them (and -Werror), which keeps the generator's output warning-clean.
set(SLUICE_TEST_PROTO_MESSAGES)
sluice_protoc_c(SLUICE_TEST_PROTO_MESSAGES ${CMAKE_CURRENT_LIST_DIR} sluice_test.proto)
set(SLUICE_TEST_PROTO_STUBS)
sluice_protoc_stubs(SLUICE_TEST_PROTO_STUBS ${CMAKE_CURRENT_LIST_DIR} sluice_test.proto)
set_source_files_properties(${SLUICE_TEST_PROTO_STUBS} PROPERTIES
                            COMPILE_OPTIONS "${SLUICE_WARNINGS}")

add_library(sluice_test_proto STATIC ${SLUICE_TEST_PROTO_MESSAGES} ${SLUICE_TEST_PROTO_STUBS})
target_include_directories(sluice_test_proto PUBLIC ${SLUICE_GEN_DIR})
target_link_libraries(sluice_test_proto PUBLIC sluice_proto)
