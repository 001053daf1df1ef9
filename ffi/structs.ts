/**
 * Byte layouts of the few kernel and libc structs weft builds or parses itself (the rest
 * go through libnl objects). Offsets and sizes are from linux/netlink.h and the libc
 * headers; fields are host byte order (little-endian on the platforms weft ships for)
 * unless marked network order.
 */

/** struct sockaddr_nl { u16 nl_family; u16 nl_pad; u32 nl_pid; u32 nl_groups; } */
export const SOCKADDR_NL = { size: 12, family: 0, pad: 2, pid: 4, groups: 8 } as const;

/** struct nlmsghdr { u32 nlmsg_len; u16 nlmsg_type; u16 nlmsg_flags; u32 nlmsg_seq; u32 nlmsg_pid; } */
export const NLMSGHDR = { size: 16, len: 0, type: 4, flags: 6, seq: 8, pid: 12 } as const;

/** Netlink messages in one datagram start on 4-byte boundaries. */
export const NLMSG_ALIGNTO = 4;
export const nlmsgAlign = (len: number): number => (len + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);

/** struct ndmsg { u8 family; u8 pad1; u16 pad2; s32 ifindex; u16 state; u8 flags; u8 type; } */
export const NDMSG = { size: 12, family: 0, ifindex: 4, state: 8, flags: 10, type: 11 } as const;

/** struct rtattr { u16 rta_len; u16 rta_type; } followed by the payload, 4-byte aligned. */
export const RTATTR = { size: 4, len: 0, type: 2 } as const;

/** struct pollfd: fd i32, events i16, revents i16. */
export const POLLFD = { size: 8, fd: 0, events: 4, revents: 6 } as const;
/** struct sockaddr_un: sa_family_t sun_family (u16), then char sun_path[108]. */
export const SOCKADDR_UN = { familySize: 2, pathMax: 108 } as const;
/** struct sockaddr_in: family u16 (host order), port u16 (network order), addr 4 bytes, 8 zero. */
export const SOCKADDR_IN_SIZE = 16;
/** struct sockaddr_in6: family u16 (host order), port u16 (network order), flowinfo u32, addr 16 bytes at 8, scope id u32 at 24. */
export const SOCKADDR_IN6_SIZE = 28;
