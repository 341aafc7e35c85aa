// What the shared C++ client library (libxkbus-client) exports: it is built
// with hidden symbols, and only declarations with this mark are its API.
#pragma once

#define XKBUS_CLIENT_API __attribute__((visibility("default")))
