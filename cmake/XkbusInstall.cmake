# Installs the exported targets, a CMake package config and xkbus.pc, so that
# other programs can build against xkbus with find_package() or pkg-config.
include(CMakePackageConfigHelpers)

install(EXPORT xkbusTargets NAMESPACE xkbus:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/xkbus)
configure_package_config_file(cmake/xkbusConfig.cmake.in
    ${CMAKE_CURRENT_BINARY_DIR}/xkbusConfig.cmake
    INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/xkbus)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/xkbusConfigVersion.cmake
    COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/xkbusConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/xkbusConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/xkbus)

get_property(XKBUS_PC_LIBS GLOBAL PROPERTY XKBUS_PC_LIBS)
list(JOIN XKBUS_PC_LIBS " " XKBUS_PC_LIBS)
# pkg-config modules our static libraries need at link time (for example the
# Xen libraries): a layer adds them with
#   set_property(GLOBAL APPEND PROPERTY XKBUS_PC_REQUIRES xengnttab)
get_property(XKBUS_PC_REQUIRES GLOBAL PROPERTY XKBUS_PC_REQUIRES)
if(XKBUS_PC_REQUIRES)
    list(REMOVE_DUPLICATES XKBUS_PC_REQUIRES)
    list(JOIN XKBUS_PC_REQUIRES " " XKBUS_PC_REQUIRES)
    set(XKBUS_PC_REQUIRES_LINE "Requires: ${XKBUS_PC_REQUIRES}")
endif()
# Relative to the .pc file, so `cmake --install --prefix DIR` works anywhere.
file(RELATIVE_PATH XKBUS_PC_PREFIX_FROM_PCDIR "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig"
     "${CMAKE_INSTALL_PREFIX}")
configure_file(cmake/xkbus.pc.in ${CMAKE_CURRENT_BINARY_DIR}/xkbus.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/xkbus.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
foreach(pc libkbus xkbus-client)
    configure_file(cmake/${pc}.pc.in ${CMAKE_CURRENT_BINARY_DIR}/${pc}.pc @ONLY)
    install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()
