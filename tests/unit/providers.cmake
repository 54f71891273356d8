# Provider adapters and the model registry (server/providers/).
sluice_test(test_registry SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_registry.c
            LIBS sluice_providers LABELS unit)
sluice_test(test_openai SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_openai.c
                    ${CMAKE_CURRENT_LIST_DIR}/adapter_test_util.c
            LIBS sluice_providers LABELS unit)
sluice_test(test_anthropic SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_anthropic.c
                    ${CMAKE_CURRENT_LIST_DIR}/adapter_test_util.c
            LIBS sluice_providers LABELS unit)
sluice_test(test_gemini SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_gemini.c
                    ${CMAKE_CURRENT_LIST_DIR}/adapter_test_util.c
            LIBS sluice_providers LABELS unit)
