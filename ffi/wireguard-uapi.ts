/**
 * WireGuard's generic netlink interface, as include/uapi/linux/wireguard.h defines it,
 * plus the generic netlink and sockaddr layouts its messages use. Plain numbers, no logic.
 */

export const WG_GENL_NAME = "wireguard";
export const WG_GENL_VERSION = 1;
export const WG_KEY_LEN = 32;

// enum wg_cmd
export const WG_CMD_GET_DEVICE = 0;
export const WG_CMD_SET_DEVICE = 1;

// enum wgdevice_flag
export const WGDEVICE_F_REPLACE_PEERS = 1 << 0;

// enum wgdevice_attribute
export const WGDEVICE_A_IFINDEX = 1;
export const WGDEVICE_A_IFNAME = 2;
export const WGDEVICE_A_PRIVATE_KEY = 3;
export const WGDEVICE_A_PUBLIC_KEY = 4;
export const WGDEVICE_A_FLAGS = 5;
export const WGDEVICE_A_LISTEN_PORT = 6;
export const WGDEVICE_A_FWMARK = 7;
export const WGDEVICE_A_PEERS = 8;

// enum wgpeer_flag
export const WGPEER_F_REMOVE_ME = 1 << 0;
export const WGPEER_F_REPLACE_ALLOWEDIPS = 1 << 1;
export const WGPEER_F_UPDATE_ONLY = 1 << 2;

// enum wgpeer_attribute
export const WGPEER_A_PUBLIC_KEY = 1;
export const WGPEER_A_PRESHARED_KEY = 2;
export const WGPEER_A_FLAGS = 3;
export const WGPEER_A_ENDPOINT = 4;
export const WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL = 5;
export const WGPEER_A_LAST_HANDSHAKE_TIME = 6;
export const WGPEER_A_RX_BYTES = 7;
export const WGPEER_A_TX_BYTES = 8;
export const WGPEER_A_ALLOWEDIPS = 9;
export const WGPEER_A_PROTOCOL_VERSION = 10;

// enum wgallowedip_attribute
export const WGALLOWEDIP_A_FAMILY = 1;
export const WGALLOWEDIP_A_IPADDR = 2;
export const WGALLOWEDIP_A_CIDR_MASK = 3;

// linux/netlink.h: attribute type flags. WireGuard's lists nest with type 0 per element.
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;
/** struct nlattr { u16 nla_len; u16 nla_type; } then the payload, padded to 4 bytes. */
export const NLATTR = { size: 4, len: 0, type: 2 } as const;

/** struct genlmsghdr { u8 cmd; u8 version; u16 reserved; } */
export const GENLMSGHDR = { size: 4, cmd: 0, version: 1 } as const;

export const NETLINK_GENERIC = 16;
/** The generic netlink controller's fixed family id (linux/genetlink.h GENL_ID_CTRL). */
export const GENL_ID_CTRL = 0x10;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;

/**
 * struct sockaddr_in { u16 sin_family (host order); u16 sin_port (network order);
 * u32 sin_addr (network order); u8 zero[8]; }
 */
export const SOCKADDR_IN = { size: 16, family: 0, port: 2, addr: 4 } as const;
/** struct sockaddr_in6 { u16 family; u16 port (BE); u32 flowinfo; u8 addr[16]; u32 scope_id; } */
export const SOCKADDR_IN6 = { size: 28, family: 0, port: 2, flowinfo: 4, addr: 8, scopeId: 24 } as const;
/** struct __kernel_timespec { s64 tv_sec; s64 tv_nsec; } */
export const KERNEL_TIMESPEC = { size: 16, sec: 0, nsec: 8 } as const;
