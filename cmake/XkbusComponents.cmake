# Install components, one per Debian package (cmake/XkbusPackage.cmake).
# Anything installed without a component (headers, static libraries, the
# pkg-config and CMake files) is development material.
set(CMAKE_INSTALL_DEFAULT_COMPONENT_NAME libxkbus-dev)

# xkbus_runtime_package(TARGET OUT): the Debian name of the package that
# carries shared library TARGET, from its SONAME (libkbus.so.1 -> libkbus1,
# libxkbus-client.so.0.1 -> libxkbus-client0.1; a name ending in a digit
# takes a hyphen). Install the library with COMPONENT ${OUT} and
# NAMELINK_COMPONENT libxkbus-dev, and list it with
#   set_property(GLOBAL APPEND PROPERTY XKBUS_SHARED_LIBRARIES TARGET)
# so that a package is made for it.
function(xkbus_runtime_package target out)
    get_target_property(name ${target} OUTPUT_NAME)
    get_target_property(soversion ${target} SOVERSION)
    if(name MATCHES "[0-9]$")
        set(${out} "lib${name}-${soversion}" PARENT_SCOPE)
    else()
        set(${out} "lib${name}${soversion}" PARENT_SCOPE)
    endif()
endfunction()
