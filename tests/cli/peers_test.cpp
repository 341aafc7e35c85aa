// Naming a Ksock's holder: a guest by its domain, a local process by its
// program and user, read from a /proc that a test lays out.
#include "peers.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

namespace xkbus::cli {
namespace {

TEST(Peers, AGuestIsItsDomain) {
    const Holder h = describeHolder(3, 1234);
    EXPECT_EQ(h.process, "dom3");
    EXPECT_EQ(h.user, "-");
}

TEST(Peers, ALocalProcessIsItsProgramAndUser) {
    const Holder h = describeHolder(0, static_cast<uint32_t>(::getpid()));
    EXPECT_EQ(h.process, "cli_tests");
    EXPECT_EQ(h.user, ::getpwuid(::geteuid())->pw_name);
}

TEST(Peers, AFakeProcFileSystemIsRead) {
    const auto root = std::filesystem::temp_directory_path() / "xkbus-proc-test";
    std::filesystem::create_directories(root / "4242");
    std::ofstream(root / "4242" / "comm") << "sensord\n";
    const Holder h = describeHolder(0, 4242, root.string());
    EXPECT_EQ(h.process, "sensord");
    EXPECT_EQ(h.user, ::getpwuid(::geteuid())->pw_name);
    std::filesystem::remove_all(root);
}

TEST(Peers, AGoneOrUnknownProcessIsAQuestionMark) {
    const Holder h = describeHolder(0, 0);
    EXPECT_EQ(h.process, "?");
    const Holder gone = describeHolder(0, 999999999);
    EXPECT_EQ(gone.process, "?");
    EXPECT_EQ(gone.user, "?");
}

} // namespace
} // namespace xkbus::cli
