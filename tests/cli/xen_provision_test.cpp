// `xkbus xen-provision` takes a guest by domid or by its xl name, as read
// from xenstore, so a unit per guest name needs no script.
#include "xen_provision.hpp"

#include <gtest/gtest.h>
#include <xkbus/xenstore/memory_store.hpp>

namespace xkbus::cli {
namespace {

using xenstore::NO_TRANSACTION;

TEST(XenProvision, AGuestIsFoundByNumberOrByName) {
    xenstore::MemoryStore memory;
    auto dom0 = memory.connect(0);
    ASSERT_TRUE(dom0->write(NO_TRANSACTION, "/local/domain/0/name", "Domain-0"));
    ASSERT_TRUE(dom0->write(NO_TRANSACTION, "/local/domain/3/name", "web1"));
    ASSERT_TRUE(dom0->write(NO_TRANSACTION, "/local/domain/7/name", "db"));
    EXPECT_EQ(findDomain(*dom0, "db").value(), 7u);
    EXPECT_EQ(findDomain(*dom0, "web1").value(), 3u);
    EXPECT_EQ(findDomain(*dom0, "12").value(), 12u);
    EXPECT_EQ(findDomain(*dom0, "web").error(), Errc::NO_SUCH_DEVICE);
}

} // namespace
} // namespace xkbus::cli
