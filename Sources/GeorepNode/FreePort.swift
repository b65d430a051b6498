import Foundation

/// A loopback TCP port that is free now (the kernel's choice for port 0), for development
/// deployments and tests that write a configuration before starting their nodes.
public func freeLoopbackPort() throws -> UInt16 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw PortError("cannot open a socket: errno \(errno)") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
        }
    }
    guard bound else { throw PortError("cannot bind a loopback port: errno \(errno)") }
    return UInt16(bigEndian: address.sin_port)
}

/// No loopback port could be found.
struct PortError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
