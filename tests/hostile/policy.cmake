# The policy file and tenant limits, end to end: an attacker running as
# `nobody` beside a victim tenant. The tests run as root (they drop to other
# users in forked children).
if(XKBUS_BUILD_TESTS)
    find_package(nlohmann_json REQUIRED)
    xkbus_add_gtest(hostile_policy_tests
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/policy_e2e_test.cpp
                ${CMAKE_CURRENT_LIST_DIR}/tenants_limits_e2e_test.cpp
        LIBS xkbus::frontend xkbus::connection xkbus::socket nlohmann_json::nlohmann_json
        LABELS integration)
    target_compile_definitions(hostile_policy_tests PRIVATE XKBUSD_PATH="$<TARGET_FILE:xkbusd>"
                                                            XKBUS_CLI_PATH="$<TARGET_FILE:xkbus>")
    add_dependencies(hostile_policy_tests xkbusd xkbus)
endif()
