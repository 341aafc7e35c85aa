# xkbus::warnings: linked PRIVATE by every target we compile.
add_library(xkbus_warnings INTERFACE)
add_library(xkbus::warnings ALIAS xkbus_warnings)
target_compile_options(xkbus_warnings INTERFACE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wnon-virtual-dtor -Wold-style-cast
    -Wcast-align -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough -Wformat=2
    -Wmissing-declarations -Wundef)
if(XKBUS_WERROR)
    target_compile_options(xkbus_warnings INTERFACE -Werror)
endif()
install(TARGETS xkbus_warnings EXPORT xkbusTargets)
