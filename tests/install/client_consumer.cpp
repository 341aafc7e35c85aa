// The C++ client API (<xkbus/ksock.hpp>) from outside the tree, linked with
// the shared libxkbus-client through pkg-config xkbus-client or the CMake
// target xkbus::client, run against a real xkbusd: a request answered by a
// replier thread.
#include <cstdio>
#include <string>
#include <thread>
#include <xkbus/ksock.hpp>

using namespace std::chrono_literals;

int main() {
    auto replier = xkbus::Ksock::open(0);
    auto asker = xkbus::Ksock::open(0);
    if (!replier || !asker || !replier->serve("$.Installed.Client")) {
        std::puts("client consumer: cannot open or bind");
        return 1;
    }
    std::thread serving([&] {
        auto request = replier->receive(5s);
        if (request) {
            (void)replier->reply(*request, "pong:" + std::string(request->text()));
        }
    });
    auto answer = asker->request("$.Installed.Client", "ping", 5s);
    serving.join();
    // The message vocabulary is the library's too.
    if (!asker->send(xkbus::makeMessage("$.Installed.Nobody", "unheard"))) {
        std::puts("client consumer: cannot send a message it made");
        return 1;
    }
    if (!answer || answer->isStatus() || answer->text() != "pong:ping") {
        std::puts("client consumer: no reply");
        return 1;
    }
    std::puts("client consumer: ok");
    return 0;
}
