# The dispatcher against the in-process fake provider.
sluice_test(test_dispatcher
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_dispatcher.c ${CMAKE_CURRENT_LIST_DIR}/dispatch_harness.c
  LIBS sluice_dispatch sluice_fake_provider sluice_fake_test_util
  LABELS integration TIMEOUT 600 WIRES)
# service_shutdown with what still references sessions (in process, no transport).
sluice_test(test_service_shutdown
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_service_shutdown.c ${CMAKE_CURRENT_LIST_DIR}/dispatch_harness.c
  LIBS sluice_service sluice_dispatch sluice_fake_provider sluice_fake_test_util
  LABELS integration TIMEOUT 300)
# The same behaviours for every provider shape (OpenAI, Anthropic, Gemini).
sluice_test(test_providers
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_providers.c ${CMAKE_CURRENT_LIST_DIR}/dispatch_harness.c
  LIBS sluice_dispatch sluice_fake_provider sluice_fake_test_util
  LABELS integration TIMEOUT 300 WIRES)
