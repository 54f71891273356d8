# Build options, warnings and sanitizers (STYLE.md "Build and checks").
option(SLUICE_WERROR "Treat warnings as errors" ON)
option(SLUICE_ASAN "Build with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
option(SLUICE_TSAN "Build with ThreadSanitizer" OFF)
# The libFuzzer configuration (tests/fuzz/): clang only. Every library is instrumented for
# coverage (fuzzer-no-link) with ASan+UBSan; the fuzz targets link libFuzzer itself.
option(SLUICE_FUZZ "Build the libFuzzer targets (clang)" OFF)

if((SLUICE_ASAN AND SLUICE_TSAN) OR (SLUICE_FUZZ AND (SLUICE_ASAN OR SLUICE_TSAN)))
  message(FATAL_ERROR "SLUICE_ASAN, SLUICE_TSAN and SLUICE_FUZZ cannot be combined")
endif()
if(SLUICE_FUZZ AND NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "SLUICE_FUZZ needs clang (CC=clang; scripts/build.sh fuzz sets it)")
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
if(SLUICE_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# sluice_target_warnings(<target>): the project's warning set, for our own code only.
# Generated code is compiled in its own targets without it.
function(sluice_target_warnings target)
  target_compile_options(${target} PRIVATE ${SLUICE_WARNINGS})
endfunction()
