# Fuzz targets (tests/fuzz/): one LLVMFuzzerTestOneInput per file, built two ways.
#  - SLUICE_FUZZ=ON (clang, scripts/build.sh fuzz): fuzz_<name> is a libFuzzer binary
#    (-fsanitize=fuzzer,address,undefined); `sluice_fuzzers` builds them all and
#    scripts/fuzz.sh runs them.
#  - any other build (gcc, normal/ASan/TSan): fuzz_<name> is the same target linked with
#    replay_main.c, and ctest test fuzz_<name> (label fuzz) replays corpus/<name>/ through it.
set(SLUICE_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
if(SLUICE_FUZZ)
  add_custom_target(sluice_fuzzers)
endif()

# sluice_fuzz_target(<name> SOURCES <src>... LIBS <lib>... [INCLUDES <dir>...])
function(sluice_fuzz_target name)
  cmake_parse_arguments(F "" "" "SOURCES;LIBS;INCLUDES" ${ARGN})
  set(exe fuzz_${name})
  if(SLUICE_FUZZ)
    add_executable(${exe} ${F_SOURCES} ${SLUICE_FUZZ_DIR}/fuzz_util.c)
    target_link_options(${exe} PRIVATE -fsanitize=fuzzer)
    add_dependencies(sluice_fuzzers ${exe})
  else()
    add_executable(${exe} ${F_SOURCES} ${SLUICE_FUZZ_DIR}/fuzz_util.c
                          ${SLUICE_FUZZ_DIR}/replay_main.c)
    add_test(NAME ${exe} COMMAND ${exe} ${SLUICE_FUZZ_DIR}/corpus/${name})
    set_tests_properties(${exe} PROPERTIES TIMEOUT 300 LABELS "fuzz;unit")
  endif()
  target_include_directories(${exe} PRIVATE ${SLUICE_TEST_INCLUDES} ${F_INCLUDES})
  target_link_libraries(${exe} PRIVATE ${F_LIBS})
  sluice_target_warnings(${exe})
endfunction()

sluice_fuzz_target(service SOURCES ${SLUICE_FUZZ_DIR}/fuzz_service.c
                   LIBS sluice_service sluice_providers sluice_store sluice_common)
sluice_fuzz_target(openai SOURCES ${SLUICE_FUZZ_DIR}/fuzz_openai.c
                   ${SLUICE_FUZZ_DIR}/fuzz_response.c LIBS sluice_providers sluice_store)
sluice_fuzz_target(anthropic SOURCES ${SLUICE_FUZZ_DIR}/fuzz_anthropic.c
                   ${SLUICE_FUZZ_DIR}/fuzz_response.c LIBS sluice_providers sluice_store)
sluice_fuzz_target(feedback SOURCES ${SLUICE_FUZZ_DIR}/fuzz_feedback.c LIBS sluice_dispatch)
sluice_fuzz_target(codec SOURCES ${SLUICE_FUZZ_DIR}/fuzz_codec.c LIBS sluice_store)
sluice_fuzz_target(config SOURCES ${SLUICE_FUZZ_DIR}/fuzz_config.c LIBS sluice_common)
sluice_fuzz_target(registry SOURCES ${SLUICE_FUZZ_DIR}/fuzz_registry.c LIBS sluice_providers)
sluice_fuzz_target(cli_input SOURCES ${SLUICE_FUZZ_DIR}/fuzz_cli_input.c
                   ${CMAKE_SOURCE_DIR}/client/cli/input.c
                   LIBS sluice PkgConfig::JANSSON INCLUDES ${CMAKE_SOURCE_DIR}/client/cli)
