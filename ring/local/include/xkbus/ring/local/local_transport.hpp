// The local transport: the same ring between two processes on one Linux host.
// Pages are sealed memfds, handed over a Unix socket with SCM_RIGHTS with the
// eventfd the frontend kicks the backend by. The socket then carries the
// backend's kicks to the frontend (a byte each), the descriptors the backend
// hands over, and liveness: when a process dies its end closes, and the
// survivor applies gntalloc's unmap-notify contract itself (zeroes the dead
// side's status byte), so the ring code sees the same thing as under Xen.
// A frontend's wait is one blocking read of the socket: a kick, a
// descriptor, or the backend's death all end it.
#pragma once

#include <string_view>
#include <xkbus/common/result.hpp>
#include <xkbus/ring/connection.hpp>

namespace xkbus::ring::local {

// Frontend: creates the pages and the eventfd, formats the ring and sends the
// handshake on `socketFd` (a connected AF_UNIX stream socket, which the
// connection then watches; we keep a duplicate, the caller still owns and
// should close socketFd). After this the socket carries only kicks and the
// descriptors the backend hands over (sendDescriptor); anything else arriving
// on it counts as a dead peer.
Result<Connection> connectFrontend(int socketFd, const FrontendOptions& options = {});

// Backend: takes the handshake from `socketFd` without blocking (TRY_AGAIN
// if it has not fully arrived), checks every descriptor it carries (sealed
// memfds, a real eventfd) and the ring header, and attaches. The event
// channel is edge-triggered: watch it with EPOLLET. A refusal gives
// PROTOCOL_VIOLATION or INVALID with the reason in *why; DISCONNECTED if the
// frontend closed the socket first.
Result<Connection> acceptBackend(int socketFd, const BackendOptions& options = {},
                                 std::string_view* why = nullptr);

// Backend: hands `fd` to the frontend over the handshake socket, without
// blocking. The frontend's Connection::takeDescriptor() returns it; sent
// before a record that mentions it, it is there when the record is read.
// The frontend can send nothing back this way: any byte from it is death.
Result<void> sendDescriptor(int socketFd, int fd);

} // namespace xkbus::ring::local
