// @ts-check
/** @type {import('next').NextConfig} */
const nextConfig = {
  // Native and server-only packages are loaded by Node at run time, not bundled: better-sqlite3
  // is native, etcd3 (gRPC) reads its .proto files from its own folder, and the store clients
  // keep their sockets and timers in module state that must not be duplicated per bundle.
  serverExternalPackages: ['better-sqlite3', 'ioredis', 'node-zookeeper-client', 'etcd3', '@grpc/grpc-js', '@aws-sdk/client-dynamodb'],
  poweredByHeader: false,
  reactStrictMode: true,
  typescript: {
    // `npm test` type-checks the whole repository with `tsc --noEmit` before anything is built;
    // next build's own pass would repeat it (slower) over bench and test files it never bundles.
    ignoreBuildErrors: true,
  },
};

export default nextConfig;
