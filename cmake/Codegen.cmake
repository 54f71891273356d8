# Code generation rules. Everything generated lands under ${SLUICE_GEN_DIR} at build time
# and is never committed.
set(SLUICE_GEN_DIR ${CMAKE_BINARY_DIR}/gen)
file(MAKE_DIRECTORY ${SLUICE_GEN_DIR})

# sluice_protoc_c(<out_var> <include_root> <proto relative to root>...)
# Runs protoc-c; appends the generated .pb-c.c files to <out_var>.
function(sluice_protoc_c out_var root)
  set(outs ${${out_var}})
  foreach(rel ${ARGN})
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    set(c ${SLUICE_GEN_DIR}/${base}.pb-c.c)
    set(h ${SLUICE_GEN_DIR}/${base}.pb-c.h)
    add_custom_command(
      OUTPUT ${c} ${h}
      COMMAND ${PROTOC} -I${root} -I${SLUICE_PROTOBUF_INCLUDE} --c_out=${SLUICE_GEN_DIR} ${rel}
      DEPENDS ${root}/${rel}
      COMMENT "protoc-c ${rel}" VERBATIM)
    list(APPEND outs ${c})
  endforeach()
  set(${out_var} ${outs} PARENT_SCOPE)
endfunction()

# sluice_protoc_stubs(<out_var> <include_root> <proto relative to root>...)
# Runs our protoc-gen-sluice; appends the generated .sluice.c files to <out_var>.
function(sluice_protoc_stubs out_var root)
  set(outs ${${out_var}})
  foreach(rel ${ARGN})
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    set(c ${SLUICE_GEN_DIR}/${base}.sluice.c)
    set(h ${SLUICE_GEN_DIR}/${base}.sluice.h)
    add_custom_command(
      OUTPUT ${c} ${h}
      COMMAND ${PROTOC} -I${root} -I${SLUICE_PROTOBUF_INCLUDE}
              --plugin=protoc-gen-sluice=$<TARGET_FILE:protoc-gen-sluice>
              --sluice_out=${SLUICE_GEN_DIR} ${rel}
      DEPENDS ${root}/${rel} protoc-gen-sluice
      COMMENT "protoc-gen-sluice ${rel}" VERBATIM)
    list(APPEND outs ${c})
  endforeach()
  set(${out_var} ${outs} PARENT_SCOPE)
endfunction()
