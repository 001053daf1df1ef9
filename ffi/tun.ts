/**
 * The TUN device's ioctl numbers, flags and layouts (linux/if_tun.h, linux/virtio_net.h):
 * for the udp backend's device and its packet loop. Numbers only; the calls go through
 * the libc table (libc.ts), the safe wrappers are src/sys/tun.ts.
 */

// linux/if_tun.h (x86-64 and aarch64 values)
export const TUNSETIFF = 0x400454ca;
export const TUNSETPERSIST = 0x400454cb;
export const IFF_TUN = 0x0001;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;
export const TUNSETOFFLOAD = 0x400454d0;
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
/** struct virtio_net_hdr (TUN's default vnet header size): flags u8, gso_type u8,
 *  hdr_len u16, gso_size u16, csum_start u16, csum_offset u16, host byte order. */
export const VNET_HDR_SIZE = 10;
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** struct ifreq: 40 bytes on 64-bit Linux; name at 0 (IFNAMSIZ 16), flags (u16) at 16. */
export const IFREQ_SIZE = 40;
export const IFREQ_FLAGS_OFFSET = 16;
export const IFNAMSIZ = 16;
