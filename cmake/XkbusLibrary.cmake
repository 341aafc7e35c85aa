# xkbus_add_library(NAME SOURCES... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# One static library per layer: headers in <dir>/include, installed and exported,
# and added to the libraries xkbus.pc lists.
function(xkbus_add_library name)
    cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
    add_library(xkbus_${name} STATIC ${ARG_SOURCES})
    add_library(xkbus::${name} ALIAS xkbus_${name})
    set_target_properties(xkbus_${name} PROPERTIES OUTPUT_NAME xkbus-${name} EXPORT_NAME ${name})
    target_include_directories(xkbus_${name} PUBLIC
        $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
        $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
    target_compile_features(xkbus_${name} PUBLIC cxx_std_20)
    # Hidden by default: the shared client libraries are made of these
    # archives and export only their APIs (frontend/CMakeLists.txt).
    set_target_properties(xkbus_${name} PROPERTIES CXX_VISIBILITY_PRESET hidden
                                                   VISIBILITY_INLINES_HIDDEN ON)
    target_link_libraries(xkbus_${name} PUBLIC ${ARG_PUBLIC_DEPS}
                                        PRIVATE ${ARG_PRIVATE_DEPS} xkbus::warnings)
    install(TARGETS xkbus_${name} EXPORT xkbusTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
    install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
    # Layers are added in dependency order and dependents must come first on a
    # static link line, so each new library goes to the front.
    get_property(libs GLOBAL PROPERTY XKBUS_PC_LIBS)
    set_property(GLOBAL PROPERTY XKBUS_PC_LIBS -lxkbus-${name} ${libs})
endfunction()

# xkbus_add_shared_library(TARGET OUTPUT_NAME N EXPORT_NAME E VERSION V SOVERSION S
#                          EXPORTS map-file SOURCES ... LIBS ...)
# A shared library: its API's SOURCES, compiled again with hidden symbols,
# and whatever they need from the static LIBS. Only the symbols the version
# script lists are exported.
function(xkbus_add_shared_library target)
    cmake_parse_arguments(ARG "" "OUTPUT_NAME;EXPORT_NAME;VERSION;SOVERSION;EXPORTS"
                          "SOURCES;LIBS" ${ARGN})
    add_library(${target} SHARED ${ARG_SOURCES})
    set_target_properties(${target} PROPERTIES
        OUTPUT_NAME ${ARG_OUTPUT_NAME} VERSION ${ARG_VERSION} SOVERSION ${ARG_SOVERSION}
        EXPORT_NAME ${ARG_EXPORT_NAME} LINK_DEPENDS ${ARG_EXPORTS}
        CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
    target_link_libraries(${target} PRIVATE ${ARG_LIBS} xkbus::warnings)
    # -z defs (XkbusOptions): a symbol left undefined is a build error, not
    # a failure at load time.
    target_link_options(${target} PRIVATE "-Wl,--version-script=${ARG_EXPORTS}"
                                          ${XKBUS_SHARED_NO_UNDEFINED} -Wl,--gc-sections)
    # Its own Debian package, named from the SONAME; the namelink is
    # development material (cmake/XkbusComponents.cmake).
    xkbus_runtime_package(${target} package)
    install(TARGETS ${target} EXPORT xkbusTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
            COMPONENT ${package} NAMELINK_COMPONENT libxkbus-dev)
    set_property(GLOBAL APPEND PROPERTY XKBUS_SHARED_LIBRARIES ${target})
endfunction()
