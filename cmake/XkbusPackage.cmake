# What an installed xkbus needs beyond its binaries and libraries: man pages
# (pandoc, from docs/man/*.md), the daemon's configuration file, systemd unit
# and system group, and the Debian packages CPack makes from all of it
# (`./run package`). One package per install component:
#
#   xkbusd          the daemon, its unit, /etc/xkbus/, the xkbus group, xkbusd(8), xkbus-policy.conf(5)
#   xkbus-tools     xkbus and xkbus-limpet, with their man pages
#   libxkbus-dev    headers, static libraries, pkg-config and CMake files (the default component)
#   lib<name><so>   one per shared library, named from its SONAME (libkbus1...):
#                   see xkbus_runtime_package in XkbusComponents.cmake
#   python3-xkbus   the Python package, once it is installed with COMPONENT python3-xkbus
#
# Components that install nothing make no package, so the shared libraries
# and the Python package drop in when they land.

# ---------------------------------------------------------------- man pages
set(XKBUS_MAN_PAGES "AUTO" CACHE STRING "Build man pages with pandoc: AUTO, ON or OFF")
find_program(XKBUS_PANDOC pandoc)
if(XKBUS_MAN_PAGES STREQUAL "ON" AND NOT XKBUS_PANDOC)
    message(FATAL_ERROR "XKBUS_MAN_PAGES=ON needs pandoc (apt-get install pandoc)")
endif()
set(XKBUS_MAN_PAGE_COMPONENTS xkbusd.8=xkbusd xkbus-policy.conf.5=xkbusd xkbus.1=xkbus-tools
                              xkbus-limpet.1=xkbus-tools)
if(XKBUS_PANDOC AND NOT XKBUS_MAN_PAGES STREQUAL "OFF")
    set(pages)
    foreach(entry IN LISTS XKBUS_MAN_PAGE_COMPONENTS)
        string(REPLACE "=" ";" entry "${entry}")
        list(GET entry 0 page)
        list(GET entry 1 component)
        string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section "${page}")
        set(source ${PROJECT_SOURCE_DIR}/docs/man/${page}.md)
        set(out ${PROJECT_BINARY_DIR}/man/${page})
        # -n: no time stamp in the gzip header, so builds are reproducible.
        add_custom_command(OUTPUT ${out}.gz
            COMMAND sed "s/@VERSION@/${PROJECT_VERSION}/" ${source}
                    | ${XKBUS_PANDOC} --standalone --from markdown-smart-tex_math_dollars --to man -o ${out}
            COMMAND gzip -9nf ${out}
            DEPENDS ${source} VERBATIM)
        list(APPEND pages ${out}.gz)
        install(FILES ${out}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section}
                COMPONENT ${component})
    endforeach()
    add_custom_target(man_pages ALL DEPENDS ${pages})
endif()

# ------------------------------------------- daemon configuration and group
# Debian 12 keeps units in /lib/systemd/system and configuration in /etc;
# under any other prefix both stay inside it (systemd also reads
# /usr/local/lib/systemd/system), so `cmake --install --prefix DIR` writes
# nothing outside DIR.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(default_unit_dir /lib/systemd/system)
    set(config_dir /etc/xkbus)
else()
    set(default_unit_dir lib/systemd/system)
    set(config_dir ${CMAKE_INSTALL_SYSCONFDIR}/xkbus)
endif()
set(XKBUS_SYSTEMD_UNIT_DIR "${default_unit_dir}" CACHE STRING "Where xkbusd.service goes")
configure_file(${PROJECT_SOURCE_DIR}/backend/daemon/xkbusd.service.in
               ${PROJECT_BINARY_DIR}/xkbusd.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/xkbusd.service DESTINATION ${XKBUS_SYSTEMD_UNIT_DIR}
        COMPONENT xkbusd)
install(FILES ${PROJECT_SOURCE_DIR}/backend/daemon/xkbusd.conf
        DESTINATION ${config_dir} COMPONENT xkbusd)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/sysusers.conf
        DESTINATION lib/sysusers.d RENAME xkbus.conf COMPONENT xkbusd)

# ------------------------------------------------------------ documentation
get_property(shared GLOBAL PROPERTY XKBUS_SHARED_LIBRARIES)
set(runtime_components "")
foreach(target IN LISTS shared)
    xkbus_runtime_package(${target} package)
    list(APPEND runtime_components ${package})
endforeach()
foreach(component xkbusd xkbus-tools libxkbus-dev python3-xkbus ${runtime_components})
    install(FILES ${PROJECT_SOURCE_DIR}/packaging/copyright
            DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${component} COMPONENT ${component})
    install(FILES ${PROJECT_BINARY_DIR}/packaging/changelog.gz
            DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${component} COMPONENT ${component})
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/docs/xen.md ${PROJECT_SOURCE_DIR}/packaging/xkbus-guest@.service
              ${PROJECT_SOURCE_DIR}/packaging/policy.conf.example
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/xkbusd COMPONENT xkbusd)
file(MAKE_DIRECTORY ${PROJECT_BINARY_DIR}/packaging)
execute_process(COMMAND gzip -9nc ${PROJECT_SOURCE_DIR}/packaging/changelog
                OUTPUT_FILE ${PROJECT_BINARY_DIR}/packaging/changelog.gz)

# ------------------------------------------------------------------- CPack
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME xkbus)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "xkbus developers <maintainers@xkbus.invalid>")
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/xkbus/xkbus")
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_XKBUSD_PACKAGE_NAME xkbusd)
set(CPACK_DEBIAN_XKBUSD_PACKAGE_SECTION net)
set(CPACK_DEBIAN_XKBUSD_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_XKBUSD_PACKAGE_RECOMMENDS "xkbus-tools")
set(CPACK_DEBIAN_XKBUSD_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/xkbusd/postinst ${PROJECT_SOURCE_DIR}/packaging/xkbusd/conffiles)
set(CPACK_COMPONENT_XKBUSD_DESCRIPTION "KBUS message bus daemon for Xen hosts and local processes
 xkbusd hosts KBUS buses: named messages, wildcard listeners, one replier
 per name, and a reply (or a status from the bus) for every request. Local
 processes share a ring with it; Xen guests reach it through xenstore and
 grant tables. The package adds the group xkbus, whose members may use the
 daemon's socket.")

set(CPACK_DEBIAN_XKBUS-TOOLS_PACKAGE_NAME xkbus-tools)
set(CPACK_DEBIAN_XKBUS-TOOLS_PACKAGE_SECTION net)
set(CPACK_COMPONENT_XKBUS-TOOLS_DESCRIPTION "command-line client and bus bridge for xkbus
 xkbus sends, listens, calls, replies and monitors on an xkbus bus, and
 shows its buses, bindings and statistics, for people or (--json) programs.
 xkbus-limpet joins two buses, in one process or across hosts over TLS.")

set(CPACK_DEBIAN_LIBXKBUS-DEV_PACKAGE_NAME libxkbus-dev)
set(CPACK_DEBIAN_LIBXKBUS-DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_LIBXKBUS-DEV_PACKAGE_DEPENDS "libexpected-dev, libxen-dev, libinih-dev")
set(CPACK_COMPONENT_LIBXKBUS-DEV_DESCRIPTION "development files for xkbus clients
 Headers, static libraries, pkg-config files and the CMake package of the
 xkbus client libraries: the C++ API (xkbus::Ksock) and the libkbus C API.")

# The shared client libraries, each in its own package (XkbusComponents.cmake),
# with an ldconfig trigger (and no ldconfig call in their maintainer scripts).
foreach(target IN LISTS shared)
    xkbus_runtime_package(${target} package)
    string(TOUPPER "${package}" upper)
    set(CPACK_DEBIAN_${upper}_PACKAGE_NAME ${package})
    set(CPACK_DEBIAN_${upper}_PACKAGE_SECTION libs)
    set(CPACK_DEBIAN_${upper}_PACKAGE_CONTROL_EXTRA
        ${PROJECT_SOURCE_DIR}/packaging/shared-library/triggers
        ${PROJECT_SOURCE_DIR}/packaging/shared-library/postinst
        ${PROJECT_SOURCE_DIR}/packaging/shared-library/postrm)
    set(CPACK_COMPONENT_${upper}_DESCRIPTION "xkbus client library (${package})
 A shared library of the xkbus client: KBUS message buses served by xkbusd,
 locally or from a Xen guest.")
endforeach()

# The development package carries the shared libraries' namelinks, and the
# Python package loads libkbus.so.1: both need those packages, at this version.
set(runtime_depends "")
foreach(target IN LISTS shared)
    xkbus_runtime_package(${target} package)
    list(APPEND runtime_depends "${package} (= ${PROJECT_VERSION})")
    if(target STREQUAL "xkbus_libkbus")
        set(libkbus_package "${package} (= ${PROJECT_VERSION})")
    endif()
endforeach()
list(JOIN runtime_depends ", " runtime_depends)
if(runtime_depends)
    string(APPEND CPACK_DEBIAN_LIBXKBUS-DEV_PACKAGE_DEPENDS ", ${runtime_depends}")
endif()
set(CPACK_DEBIAN_PYTHON3-XKBUS_PACKAGE_DEPENDS "python3:any, ${libkbus_package}")

set(CPACK_DEBIAN_PYTHON3-XKBUS_PACKAGE_NAME python3-xkbus)
set(CPACK_DEBIAN_PYTHON3-XKBUS_PACKAGE_SECTION python)
set(CPACK_DEBIAN_PYTHON3-XKBUS_PACKAGE_ARCHITECTURE all)
set(CPACK_COMPONENT_PYTHON3-XKBUS_DESCRIPTION "KBUS Python API over xkbus")

include(CPack)
