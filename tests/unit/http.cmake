# test_http: the libcurl multi client (server/http) against the in-process fake provider.
if(TARGET sluice_http AND TARGET sluice_fake_provider)
  sluice_test(test_http
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_http.c
            ${CMAKE_SOURCE_DIR}/tests/fake_provider/fake_test_util.c
    LIBS sluice_http sluice_fake_provider PkgConfig::CURL Threads::Threads
    LABELS unit http
    TIMEOUT 120)
endif()
