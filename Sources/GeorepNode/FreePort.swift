import Foundation

/// A loopback TCP port that is free now, for development deployments and tests that write a
/// configuration before starting their nodes.
///
/// It is drawn below Linux's ephemeral range (32768-60999 by default), where the kernel picks
/// the ports of outgoing connections and of listeners bound to port 0 (the development broker's):
/// a port from that range could be taken by a Kafka client's connection before the node binds it.
/// When none is free there, the kernel's choice for port 0.
public func freeLoopbackPort() throws -> UInt16 {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<50 {
        let port = UInt16.random(in: 20_000..<32_768, using: &generator)
        if try bindLoopback(port: port) != nil { return port }
    }
    guard let port = try bindLoopback(port: 0) else { throw PortError("cannot bind a loopback port: errno \(errno)") }
    return port
}

/// Binds a socket to 127.0.0.1:`port` and closes it; returns the port bound, nil when taken.
private func bindLoopback(port: UInt16) throws -> UInt16? {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw PortError("cannot open a socket: errno \(errno)") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = port.bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
        }
    }
    return bound ? UInt16(bigEndian: address.sin_port) : nil
}

/// No loopback port could be found.
struct PortError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
