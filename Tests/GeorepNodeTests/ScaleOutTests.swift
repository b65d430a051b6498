import Foundation
import GeorepModel
import GeorepNode
import GeorepTestSupport
import Synchronization
import Testing

/// Several node processes of one region sharing its partitions and a PostgreSQL store (issue 7).
@Suite("scale-out", .serialized, .tags(.process), .startsProcesses)
struct ScaleOutTests {
    final class Written: Sendable {
        let tokens = Mutex<[String]>([])
        let views = Mutex<[String: Int64]>([:])
    }

    @Test("two node processes of us-east-1 share a PostgreSQL database and split its partitions; one is SIGKILLed under load; the other takes over, and us-east-1 ends equal to eu-west-1 without double-counting")
    func twoProcessesShareARegion() async throws {
        try await TestPostgres.withScratchDatabase { url in
            try await ProcessDeployment.with(stores: ["us-east-1": url], startingNodes: false) { deployment, client in
                try await deployment.start("eu-west-1")
                try await deployment.start("ap-southeast-1")
                let second = HostPort(host: "127.0.0.1", port: try freeLoopbackPort())
                try await deployment.start("us-east-1", name: "us-a", arguments: ["--instance", "a"], logLevel: "info")
                try await deployment.start("us-east-1", name: "us-b", arguments: ["--instance", "b", "--listen", second.description], logLevel: "info")

                // The group splits the partitions between the two processes.
                let deadline = ContinuousClock.now + .seconds(30)
                while ContinuousClock.now < deadline, !["us-a", "us-b"].allSatisfy({ deployment.log($0).contains("applying partitions given by the group") }) {
                    try await Task.sleep(for: .milliseconds(100))
                }
                for name in ["us-a", "us-b"] {
                    #expect(deployment.log(name).contains("applying partitions given by the group"), "\(name) was given no partitions")
                }

                let written = Written()
                let writers: [(String, HostPort)] = [("eu-west-1", deployment.address("eu-west-1")), ("ap-southeast-1", deployment.address("ap-southeast-1")), ("us-b", second)]
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (name, address) in writers {
                        group.addTask {
                            for number in 0..<150 {
                                let cart = "c\(number % 10)"
                                let increment = try await client.send("POST", address, NodeHTTPClient.rowPath("cart", cart, "/increment"), json: ["views": 1])
                                let profile = try await client.send("PUT", address, NodeHTTPClient.rowPath("user_profile", "\(number % 40)"), json: ["bio": .string("\(name) \(number)")])
                                #expect(increment.status == 200 && profile.status == 200, "\(name): \(increment.status) \(profile.status)")
                                written.views.withLock { $0[cart, default: 0] += increment.status == 200 ? 1 : 0 }
                                written.tokens.withLock { $0 += [increment.token, profile.token].compactMap { $0 } }
                            }
                        }
                    }
                    group.addTask {
                        try await Task.sleep(for: .seconds(2))
                        await deployment.nodes["us-a"]!.stop(signal: SIGKILL)
                    }
                    try await group.waitForAll()
                }

                // The survivor takes over the killed process's partitions and catches up.
                var highest: [String: (String, Int64)] = [:]
                for token in written.tokens.withLock({ $0 }) {
                    let parts = token.split(separator: ":")
                    let slot = "\(parts[0]):\(parts[1])"
                    if (highest[slot]?.1 ?? -1) < Int64(parts[2]) ?? 0 { highest[slot] = (token, Int64(parts[2]) ?? 0) }
                }
                let header = highest.values.map(\.0).joined(separator: ",")
                var caughtUp = false
                let catchUp = ContinuousClock.now + .seconds(90)
                while ContinuousClock.now < catchUp {
                    let reply = try await client.send("GET", second, NodeHTTPClient.rowPath("cart", "c0"), headers: ["georep-token": header])
                    if reply.servedBy == "local" { caughtUp = true; break }
                    try await Task.sleep(for: .milliseconds(250))
                }
                #expect(caughtUp, "the surviving process did not apply every write within 90 s")
                for region in ["eu-west-1"] {
                    _ = try await client.send("GET", deployment.address(region), NodeHTTPClient.rowPath("cart", "c0"), headers: ["georep-token": header])
                }
                let views = written.views.withLock { $0 }
                for cart in views.keys.sorted() {
                    let survivor = try await client.send("GET", second, NodeHTTPClient.rowPath("cart", cart))
                    let reference = try await client.send("GET", deployment.address("eu-west-1"), NodeHTTPClient.rowPath("cart", cart), headers: ["georep-token": header])
                    #expect(survivor.json?.objectValue?["views"]?.intValue == views[cart], "\(cart): \(survivor.json?.jsonText ?? "") expected \(views[cart] ?? 0)")
                    #expect(survivor.json == reference.json, "\(cart) differs from the uninterrupted region")
                }
                for id in 0..<40 {
                    let survivor = try await client.send("GET", second, NodeHTTPClient.rowPath("user_profile", "\(id)"))
                    let reference = try await client.send("GET", deployment.address("eu-west-1"), NodeHTTPClient.rowPath("user_profile", "\(id)"), headers: ["georep-token": header])
                    #expect(survivor.status == 200 && survivor.json == reference.json, "user_profile \(id): \(survivor.json?.jsonText ?? "") vs \(reference.json?.jsonText ?? "")")
                }
            }
        }
    }
}
