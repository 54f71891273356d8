# The fake LLM provider (OpenAI, Anthropic and Gemini shapes) used by tests and benchmarks:
#   sluice_fake_provider  library for in-process use (fake_provider.h)
#   sluice-fake-provider  standalone server (prints port=N, exits on SIGTERM)
#   sluice-http-bench     load generator: http_client against a fake (timing lives here)
#   test_fake_provider    CUnit tests of the fake itself
#   sluice_fake_test_util helpers for tests (fake_test_util.h): HTTP, temp dirs, certificates
# Included from tests/CMakeLists.txt, so paths are relative to this file.
set(FAKE_DIR ${CMAKE_CURRENT_LIST_DIR})

add_library(sluice_fake_provider STATIC
  ${FAKE_DIR}/fake_provider.c ${FAKE_DIR}/fake_decide.c ${FAKE_DIR}/fake_control.c
  ${FAKE_DIR}/fake_parse.c ${FAKE_DIR}/fake_answer.c ${FAKE_DIR}/fake_state.c
  ${FAKE_DIR}/fake_tables.c ${FAKE_DIR}/fake_limits.c ${FAKE_DIR}/fake_timer.c
  ${FAKE_DIR}/fake_reply.c ${FAKE_DIR}/fake_route.c ${FAKE_DIR}/fake_h2.c ${FAKE_DIR}/fake_raw.c)
target_include_directories(sluice_fake_provider PUBLIC ${SLUICE_TEST_INCLUDES})
target_link_libraries(sluice_fake_provider PUBLIC sluice_common PkgConfig::MHD PkgConfig::JANSSON
                      PkgConfig::NGHTTP2 PkgConfig::SSL PkgConfig::CRYPTO PkgConfig::ZLIB
                      Threads::Threads m)
sluice_target_warnings(sluice_fake_provider)

add_library(sluice_fake_test_util STATIC ${FAKE_DIR}/fake_test_util.c)
target_include_directories(sluice_fake_test_util PUBLIC ${SLUICE_TEST_INCLUDES})
target_link_libraries(sluice_fake_test_util PUBLIC sluice_fake_provider sluice_common PkgConfig::CURL)
sluice_target_warnings(sluice_fake_test_util)

add_executable(sluice-fake-provider ${FAKE_DIR}/fake_main.c)
target_link_libraries(sluice-fake-provider PRIVATE sluice_fake_provider)
sluice_target_warnings(sluice-fake-provider)

if(TARGET sluice_http)
  add_executable(sluice-http-bench ${FAKE_DIR}/http_bench.c)
  target_link_libraries(sluice-http-bench PRIVATE sluice_fake_provider sluice_http)
  sluice_target_warnings(sluice-http-bench)

  sluice_test(test_fake_provider
    SOURCES ${FAKE_DIR}/test_fake_provider.c ${FAKE_DIR}/test_fake_provider_state.c
            ${FAKE_DIR}/test_fake_provider_gemini.c
    LIBS sluice_fake_provider sluice_fake_test_util sluice_http
    LABELS unit fake_provider
    TIMEOUT 120)
  add_dependencies(test_fake_provider sluice-fake-provider)
  set_property(TEST test_fake_provider APPEND PROPERTY ENVIRONMENT
    "SLUICE_FAKE_PROVIDER_BIN=$<TARGET_FILE:sluice-fake-provider>")
endif()
