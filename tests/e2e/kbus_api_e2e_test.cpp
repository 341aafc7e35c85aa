// The libkbus C API against a real daemon: the same C smoke program the
// frontend tests run against a fake bus, unchanged, with the default channel
// factory (the daemon at $XKBUS_SOCKET).
#include "daemon_fixture.hpp"

extern "C" int c_smoke_run(void);

namespace xkbus::testing {
namespace {

TEST_F(DaemonTest, LibkbusProgramRunsUnchangedAgainstTheDaemon) {
    EXPECT_EQ(c_smoke_run(), 0) << "the line of c_smoke.c that failed";
}

} // namespace
} // namespace xkbus::testing
