# Hostile tenants at the daemon's front doors, event loop and xenstore
# (issue 15): tests/hostile/frontdoor_*.cpp, against a real xkbusd.
if(XKBUS_BUILD_TESTS)
    find_package(spdlog REQUIRED)
    xkbus_add_gtest(hostile_frontdoor_tests
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/frontdoor_local_test.cpp
                ${CMAKE_CURRENT_LIST_DIR}/frontdoor_xenstore_test.cpp
        LIBS xkbus::frontend xkbus::connection xkbus::socket xkbus::ring_local xkbus::daemon
             xkbus::xenstore xkbus::xenstore_memory spdlog::spdlog
        LABELS integration)
    # The Xen front door is the daemon's own class, not a public one.
    target_include_directories(hostile_frontdoor_tests PRIVATE
        ${PROJECT_SOURCE_DIR}/backend/daemon/src)
    target_compile_definitions(hostile_frontdoor_tests PRIVATE
        XKBUSD_PATH="$<TARGET_FILE:xkbusd>")
    add_dependencies(hostile_frontdoor_tests xkbusd)
endif()
