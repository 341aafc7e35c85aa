# Build options. One place, so every layer sees the same switches.
option(XKBUS_BUILD_TESTS "Build the test suite" ON)
option(XKBUS_BUILD_BENCH "Build the benchmarks" ON)
option(XKBUS_WERROR "Treat compiler warnings as errors" ON)
option(XKBUS_FUZZ "Build the libFuzzer targets (clang only)" OFF)
set(XKBUS_SANITIZE "" CACHE STRING "Sanitizers: address,undefined | thread | empty")
set(XKBUS_WITH_XEN "AUTO" CACHE STRING "Build the Xen transport: AUTO, ON or OFF")
set_property(CACHE XKBUS_WITH_XEN PROPERTY STRINGS AUTO ON OFF)

if(XKBUS_SANITIZE)
    add_compile_options(-fsanitize=${XKBUS_SANITIZE} -fno-omit-frame-pointer
                        -fno-sanitize-recover=all)
    add_link_options(-fsanitize=${XKBUS_SANITIZE})
endif()

if(XKBUS_FUZZ)
    if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
        message(FATAL_ERROR "XKBUS_FUZZ needs clang (libFuzzer)")
    endif()
    # Instrument everything for coverage; only the fuzz mains link libFuzzer.
    add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                        -fno-sanitize-recover=all)
    add_link_options(-fsanitize=address,undefined)
endif()

# Asserts stay on in every build: they guard our own invariants, never peer input.
string(REPLACE "-DNDEBUG" "" CMAKE_CXX_FLAGS_RELWITHDEBINFO "${CMAKE_CXX_FLAGS_RELWITHDEBINFO}")
string(REPLACE "-DNDEBUG" "" CMAKE_CXX_FLAGS_RELEASE "${CMAKE_CXX_FLAGS_RELEASE}")

# Shared libraries refuse undefined symbols at link time (-z defs), except
# under clang's sanitizers, which leave their runtime to the executable.
set(XKBUS_SHARED_NO_UNDEFINED -Wl,-z,defs)
if((XKBUS_FUZZ OR XKBUS_SANITIZE) AND CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    set(XKBUS_SHARED_NO_UNDEFINED "")
endif()
