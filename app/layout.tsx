import type { ReactNode } from 'react';
import type { Metadata, Viewport } from 'next';

import { Providers } from '@/app/providers';
import { THEME_INIT_SCRIPT } from '@/components/layout/theme-script';

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
// `suppressHydrationWarning`: the theme script sets data-theme on <html> before React hydrates.
export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en" suppressHydrationWarning>
      <head>
        <script dangerouslySetInnerHTML={{ __html: THEME_INIT_SCRIPT }} />
      </head>
      <body className="min-h-dvh bg-background font-sans text-foreground antialiased">
        <Providers>{children}</Providers>
      </body>
    </html>
  );
}
