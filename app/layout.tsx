import type { ReactNode } from 'react';
import type { Metadata, Viewport } from 'next';
import Link from 'next/link';

import { Providers } from '@/app/providers';

import './globals.css';

export const metadata: Metadata = {
  title: { default: 'lockdeck', template: '%s · lockdeck' },
  description: 'Live console for distributed locks across Redis, ZooKeeper, etcd, DynamoDB and SQLite.',
};

export const viewport: Viewport = {
  colorScheme: 'light dark',
  themeColor: [
    { media: '(prefers-color-scheme: light)', color: '#fafafa' },
    { media: '(prefers-color-scheme: dark)', color: '#09090b' },
  ],
};

// System fonts on purpose: next/font/google would fetch at build time, and builds run offline.
export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body className="min-h-dvh bg-background font-sans text-foreground antialiased">
        <Providers>
          <header className="border-b border-border bg-card">
            <div className="mx-auto flex h-14 max-w-5xl items-center px-6">
              <Link
                href="/"
                className="flex items-center gap-2 rounded-sm font-semibold tracking-tight focus-visible:outline-2 focus-visible:outline-offset-4 focus-visible:outline-sky-500"
              >
                <LockMark />
                lockdeck
              </Link>
            </div>
          </header>
          <main className="mx-auto max-w-5xl px-6 py-10">{children}</main>
        </Providers>
      </body>
    </html>
  );
}

function LockMark() {
  return (
    <svg
      viewBox="0 0 24 24"
      aria-hidden="true"
      className="size-5 text-sky-600 dark:text-sky-400"
      fill="none"
      stroke="currentColor"
      strokeWidth={2}
      strokeLinecap="round"
      strokeLinejoin="round"
    >
      <rect x="4" y="11" width="16" height="10" rx="2" />
      <path d="M8 11V7a4 4 0 0 1 8 0v4" />
    </svg>
  );
}
