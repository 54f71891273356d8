# test_http: the libcurl multi client (server/http) against the in-process fake provider.
if(TARGET sluice_http AND TARGET sluice_fake_provider)
  sluice_test(test_http
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_http.c
    LIBS sluice_http sluice_fake_provider sluice_fake_test_util Threads::Threads
    LABELS unit http
    TIMEOUT 120 WIRES)
endif()
