/**
 * Kernel and libnl constants weft uses, with the values from the Linux uapi headers
 * (linux/if.h, linux/netlink.h, linux/rtnetlink.h, linux/neighbour.h) and libnl's
 * netlink/errno.h. Plain numbers, no logic.
 */

// Address families (linux/socket.h).
export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
/** libnl parses and builds link-layer (MAC) addresses with this family. */
export const AF_LLC = 26;

// IPv6 socket option (linux/in6.h): the socket takes IPv6 only, no IPv4-mapped peers.
export const IPPROTO_IPV6 = 41;
export const IPV6_V6ONLY = 26;

// Socket types and flags (linux/net.h, fcntl.h on x86-64/aarch64).
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const MSG_DONTWAIT = 0x40;

// Netlink protocols (linux/netlink.h).
export const NETLINK_ROUTE = 0;

// nlmsghdr flags (linux/netlink.h).
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
export const NLM_F_MULTI = 0x2;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;

// Control message types (linux/netlink.h).
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

// rtnetlink message types (linux/rtnetlink.h).
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;

// Neighbour attributes (linux/neighbour.h).
export const NDA_DST = 1;
export const NDA_LLADDR = 2;

// Legacy multicast group bitmask for sockaddr_nl.nl_groups (linux/rtnetlink.h).
export const RTMGRP_LINK = 0x1;
export const RTMGRP_NEIGH = 0x4;
export const RTMGRP_IPV4_IFADDR = 0x10;
export const RTMGRP_IPV4_ROUTE = 0x40;
export const RTMGRP_IPV6_IFADDR = 0x100;
export const RTMGRP_IPV6_ROUTE = 0x400;

// Address flags (linux/if_addr.h): no duplicate address detection; no prefix route.
export const IFA_F_NODAD = 0x02;
export const IFA_F_NOPREFIXROUTE = 0x200;

// Interface flags (linux/if.h).
export const IFF_UP = 0x1;
export const IFF_LOWER_UP = 0x10000;

// Neighbour states and flags (linux/neighbour.h).
export const NUD_REACHABLE = 0x02;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;
export const NTF_SELF = 0x02;
export const NTF_MASTER = 0x04;

// Route attributes (linux/rtnetlink.h).
export const RTNH_F_ONLINK = 0x4;
export const RTPROT_UNSPEC = 0;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;
export const RTN_UNICAST = 1;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_NOWHERE = 255;

// libnl error codes (netlink/errno.h); libnl returns them negated.
export const NLE_SUCCESS = 0;
export const NLE_FAILURE = 1;
export const NLE_EXIST = 6;
export const NLE_INVAL = 7;
export const NLE_NOMEM = 5;
export const NLE_OBJ_NOTFOUND = 12;
export const NLE_AF_MISMATCH = 15;
export const NLE_NOADDR = 19;
export const NLE_NODEV = 31;

// libc (x86-64 and aarch64 values)
// errno values the wrappers tell apart (asm-generic/errno-base.h, errno.h)
export const ENOENT = 2;
export const EINTR = 4;
export const EAGAIN = 11;
export const ENOTTY = 25;
export const EBADFD = 77;
export const EADDRINUSE = 98;
export const ENOBUFS = 105;
export const EINPROGRESS = 115;

// fcntl.h
export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

// sys/file.h
export const LOCK_EX = 2;
export const LOCK_UN = 8;

// sched.h: the namespace type setns() is asked to join.
export const CLONE_NEWNET = 0x40000000;
/** linux/nsfs.h: NS_GET_NSTYPE = _IO(0xb7, 0x3); returns the CLONE_NEW* type of an nsfs fd. */
export const NS_GET_NSTYPE = 0xb703;

// sys/socket.h
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOL_SOCKET = 1;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const MSG_NOSIGNAL = 0x4000;

// poll.h
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
