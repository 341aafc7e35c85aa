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
    target_link_libraries(xkbus_${name} PUBLIC ${ARG_PUBLIC_DEPS}
                                        PRIVATE ${ARG_PRIVATE_DEPS} xkbus::warnings)
    install(TARGETS xkbus_${name} EXPORT xkbusTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
    install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
    # Layers are added in dependency order and dependents must come first on a
    # static link line, so each new library goes to the front.
    get_property(libs GLOBAL PROPERTY XKBUS_PC_LIBS)
    set_property(GLOBAL PROPERTY XKBUS_PC_LIBS -lxkbus-${name} ${libs})
endfunction()
