// @ts-check
/** @type {import('next').NextConfig} */
const nextConfig = {
  // Native and server-only packages are loaded by Node at run time, not bundled.
  serverExternalPackages: ['better-sqlite3', 'ioredis'],
  poweredByHeader: false,
  reactStrictMode: true,
};

export default nextConfig;
