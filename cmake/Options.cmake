# Build options, warnings and sanitizers (STYLE.md "Build and checks").
option(SLUICE_WERROR "Treat warnings as errors" ON)
option(SLUICE_ASAN "Build with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
option(SLUICE_TSAN "Build with ThreadSanitizer" OFF)

if(SLUICE_ASAN AND SLUICE_TSAN)
  message(FATAL_ERROR "SLUICE_ASAN and SLUICE_TSAN cannot be combined")
endif()

set(SLUICE_WARNINGS
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla
  -Wno-unused-parameter)
if(SLUICE_WERROR)
  list(APPEND SLUICE_WARNINGS -Werror)
endif()

if(SLUICE_ASAN)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(SLUICE_TSAN)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()

# sluice_target_warnings(<target>): the project's warning set, for our own code only.
# Generated code is compiled in its own targets without it.
function(sluice_target_warnings target)
  target_compile_options(${target} PRIVATE ${SLUICE_WARNINGS})
endfunction()
