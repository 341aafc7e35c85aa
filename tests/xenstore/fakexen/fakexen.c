/* fakexen: an LD_PRELOAD shim that lets Debian's real xenstored run without a
 * hypervisor. It replaces the 17 Xen calls xenstored imports and serves
 * /proc/xen/xsd_{port,kva} from files. Test-only; never loaded by xkbus.
 * C, because xenctrl.h (for xc_dominfo_t) only compiles as GNU C.
 *
 * Environment (set by tests/xenstore/xenstored_fixture.cpp):
 *   FAKEXEN_XSD_PORT    file served as /proc/xen/xsd_port (holds "1")
 *   FAKEXEN_XSD_KVA     file served as /proc/xen/xsd_kva (4 KiB: dom0's ring page)
 *   FAKEXEN_EVTCHN_FIFO FIFO used as the event-channel fd: writing a 4-byte
 *                       port into it raises that port (VIRQ_DOM_EXC is
 *                       FAKEXEN_VIRQ_PORT); without it, an idle pipe
 *   FAKEXEN_DYING_DIR   a file named <domid> in it makes that domain "dying"
 *   FAKEXEN_READY_FD    gets "ready" once dom0 is set up, then is closed
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>

#define FAKEXEN_VIRQ_PORT 1000
#define PAGE_BYTES 4096

#define EXPORT __attribute__((visibility("default")))

struct xenevtchn_handle {
    int fd;
    evtchn_port_t next_port;
};

/* One static object stands for the handles xenstored only passes back. */
static int dummy_handle;

static const char* env(const char* name) {
    const char* value = getenv(name);
    return value && *value ? value : NULL;
}

typedef int (*open_fn)(const char*, int, ...);

static const char* redirect(const char* path) {
    if (path && strcmp(path, "/proc/xen/xsd_port") == 0)
        return env("FAKEXEN_XSD_PORT");
    if (path && strcmp(path, "/proc/xen/xsd_kva") == 0)
        return env("FAKEXEN_XSD_KVA");
    return NULL;
}

static int open_redirected(const char* symbol, const char* path, int flags, mode_t mode) {
    open_fn real = (open_fn)dlsym(RTLD_NEXT, symbol);
    const char* target = redirect(path);
    return real(target ? target : path, flags, mode);
}

EXPORT int open(const char* path, int flags, ...) {
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list args;
        va_start(args, flags);
        mode = (mode_t)va_arg(args, int);
        va_end(args);
    }
    return open_redirected("open", path, flags, mode);
}

EXPORT int open64(const char* path, int flags, ...) {
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list args;
        va_start(args, flags);
        mode = (mode_t)va_arg(args, int);
        va_end(args);
    }
    return open_redirected("open64", path, flags, mode);
}

static void signal_ready_once(void) {
    static int done;
    const char* fd_text = env("FAKEXEN_READY_FD");
    if (done || !fd_text)
        return;
    done = 1;
    int fd = atoi(fd_text);
    if (write(fd, "ready", 5) != 5)
        fprintf(stderr, "fakexen: cannot signal readiness\n");
    close(fd);
}

static int is_dying(uint32_t domid) {
    const char* dir = env("FAKEXEN_DYING_DIR");
    char path[4096];
    struct stat st;
    if (!dir)
        return 0;
    snprintf(path, sizeof path, "%s/%u", dir, domid);
    return stat(path, &st) == 0;
}

/* ---- libxenctrl: every domain exists; some may be listed as dying ---- */

EXPORT xc_interface* xc_interface_open(xentoollog_logger* logger,
                                       xentoollog_logger* dombuild_logger, unsigned flags) {
    (void)logger, (void)dombuild_logger, (void)flags;
    return (xc_interface*)&dummy_handle;
}

EXPORT int xc_interface_close(xc_interface* xch) {
    (void)xch;
    return 0;
}

EXPORT int xc_domain_getinfo(xc_interface* xch, uint32_t first_domid, unsigned int max_doms,
                             xc_dominfo_t* info) {
    (void)xch;
    if (max_doms == 0)
        return 0;
    memset(info, 0, sizeof *info);
    info->domid = first_domid;
    info->dying = is_dying(first_domid) ? 1 : 0;
    return 1;
}

/* ---- libxenevtchn: a FIFO (or pipe) stands for /dev/xen/evtchn ---- */

EXPORT xenevtchn_handle* xenevtchn_open(struct xentoollog_logger* logger, unsigned flags) {
    (void)logger, (void)flags;
    int fd = -1;
    const char* fifo = env("FAKEXEN_EVTCHN_FIFO");
    if (fifo) {
        /* O_RDWR keeps the FIFO open with no writer, so it never reads EOF. */
        fd = open_redirected("open", fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
    } else {
        int fds[2];
        if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0)
            fd = fds[0]; /* the write end stays open and unused on purpose */
    }
    if (fd < 0)
        return NULL;
    xenevtchn_handle* xce = malloc(sizeof *xce);
    if (!xce)
        return NULL;
    xce->fd = fd;
    xce->next_port = 10;
    return xce;
}

EXPORT xenevtchn_handle* xenevtchn_fdopen(struct xentoollog_logger* logger, int fd,
                                          unsigned flags) {
    (void)fd;
    return xenevtchn_open(logger, flags);
}

EXPORT int xenevtchn_fd(xenevtchn_handle* xce) {
    return xce->fd;
}

EXPORT int xenevtchn_notify(xenevtchn_handle* xce, evtchn_port_t port) {
    (void)xce, (void)port;
    /* The first notify is dom0_init() telling dom0 that xenstored is up. */
    signal_ready_once();
    return 0;
}

EXPORT xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle* xce, uint32_t domid,
                                                            evtchn_port_t remote_port) {
    (void)domid, (void)remote_port;
    return (xenevtchn_port_or_error_t)xce->next_port++;
}

EXPORT xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle* xce, unsigned int virq) {
    (void)xce, (void)virq;
    return FAKEXEN_VIRQ_PORT;
}

EXPORT int xenevtchn_unbind(xenevtchn_handle* xce, evtchn_port_t port) {
    (void)xce, (void)port;
    return 0;
}

EXPORT xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle* xce) {
    uint32_t port = 0;
    if (read(xce->fd, &port, sizeof port) != (ssize_t)sizeof port) {
        errno = EAGAIN;
        return -1;
    }
    return (xenevtchn_port_or_error_t)port;
}

EXPORT int xenevtchn_unmask(xenevtchn_handle* xce, evtchn_port_t port) {
    (void)xce, (void)port;
    return 0;
}

/* ---- libxengnttab: a guest's xenstore ring is a private anonymous page ---- */

EXPORT xengnttab_handle* xengnttab_open(struct xentoollog_logger* logger, unsigned flags) {
    (void)logger, (void)flags;
    return (xengnttab_handle*)&dummy_handle;
}

EXPORT int xengnttab_close(xengnttab_handle* xgt) {
    (void)xgt;
    return 0;
}

EXPORT int xengnttab_set_max_grants(xengnttab_handle* xgt, uint32_t nr_grants) {
    (void)xgt, (void)nr_grants;
    return 0;
}

EXPORT void* xengnttab_map_grant_ref(xengnttab_handle* xgt, uint32_t domid, uint32_t ref,
                                     int prot) {
    (void)xgt, (void)domid, (void)ref;
    void* page = mmap(NULL, PAGE_BYTES, prot, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return page == MAP_FAILED ? NULL : page;
}

EXPORT int xengnttab_unmap(xengnttab_handle* xgt, void* start_address, uint32_t count) {
    (void)xgt;
    return munmap(start_address, (size_t)count * PAGE_BYTES);
}
