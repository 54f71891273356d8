# protoc-gen-sluice: the generated tables of the real protos (sluice.proto, health.proto,
# sluice_test.proto) and of deliberately odd ones, the naming rules and the plugin logic.
set(SLUICE_CODEGEN_ODD_PROTOS tests/unit/codegen_odd.proto tests/unit/codegen_renamed.proto)
set(SLUICE_CODEGEN_ODD_MESSAGES)
sluice_protoc_c(SLUICE_CODEGEN_ODD_MESSAGES ${CMAKE_SOURCE_DIR} ${SLUICE_CODEGEN_ODD_PROTOS})
set(SLUICE_CODEGEN_ODD_STUBS)
sluice_protoc_stubs(SLUICE_CODEGEN_ODD_STUBS ${CMAKE_SOURCE_DIR} ${SLUICE_CODEGEN_ODD_PROTOS})

# Generated stubs are built with the project's warnings (and -Werror) here, where only this
# directory sees the property: the odd ones in their library, the product's (generated in
# proto/) once more in an object library that nothing links.
set(SLUICE_CODEGEN_PRODUCT_STUBS ${SLUICE_GEN_DIR}/sluice/v1/sluice.sluice.c
                                 ${SLUICE_GEN_DIR}/grpc/health/v1/health.sluice.c)
set_source_files_properties(${SLUICE_CODEGEN_ODD_STUBS} ${SLUICE_CODEGEN_PRODUCT_STUBS}
                            PROPERTIES COMPILE_OPTIONS "${SLUICE_WARNINGS}")

add_library(sluice_codegen_odd_proto STATIC ${SLUICE_CODEGEN_ODD_MESSAGES}
                                            ${SLUICE_CODEGEN_ODD_STUBS})
target_include_directories(sluice_codegen_odd_proto PUBLIC ${SLUICE_GEN_DIR})
target_link_libraries(sluice_codegen_odd_proto PUBLIC sluice_proto)

add_library(sluice_codegen_warning_check OBJECT ${SLUICE_CODEGEN_PRODUCT_STUBS})
target_link_libraries(sluice_codegen_warning_check PRIVATE sluice_proto)
add_dependencies(sluice_codegen_warning_check sluice_proto)

sluice_test(test_codegen SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_codegen.c
            LIBS sluice_codegen sluice_codegen_odd_proto sluice_test_proto sluice_proto
            LABELS unit codegen ARGS $<TARGET_FILE:protoc-gen-sluice>)
add_dependencies(test_codegen sluice_codegen_warning_check protoc-gen-sluice)
