# xkbus::warnings: linked PRIVATE by every target we compile.
add_library(xkbus_warnings INTERFACE)
add_library(xkbus::warnings ALIAS xkbus_warnings)
target_compile_options(xkbus_warnings INTERFACE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wcast-align -Wimplicit-fallthrough -Wformat=2
    -Wmissing-declarations -Wundef
    $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual>)
# Not -Wnull-dereference: GCC 12 reports false positives inside libstdc++'s
# own std::string at -O2 (seen building xkbusd's option parsing).
if(XKBUS_WERROR)
    target_compile_options(xkbus_warnings INTERFACE -Werror)
endif()
install(TARGETS xkbus_warnings EXPORT xkbusTargets)
