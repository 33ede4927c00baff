// Tells systemd how the service is doing (sd_notify's protocol): "READY=1"
// once serving, "STOPPING=1" when a stop begins, so a Type=notify unit's
// `systemctl start` returns when clients can connect, not when the process
// merely exists. Does nothing unless systemd set NOTIFY_SOCKET.
//
// Written here rather than linking libsystemd: the protocol is one datagram
// on a Unix socket, and the package should not need libsystemd to run
// outside systemd (containers, tests).
#ifndef STRATA_OPS_SYSTEMD_NOTIFY_H_
#define STRATA_OPS_SYSTEMD_NOTIFY_H_

#include <string_view>

namespace strata::ops {

// True if the message was sent (false also when there is no NOTIFY_SOCKET).
bool NotifySystemd(std::string_view state);

}  // namespace strata::ops

#endif  // STRATA_OPS_SYSTEMD_NOTIFY_H_
