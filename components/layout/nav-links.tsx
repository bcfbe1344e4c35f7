'use client';

import Link from 'next/link';
import { usePathname } from 'next/navigation';

import { cn } from '@/lib/utils';

const LINKS = [
  { href: '/', label: 'Overview', match: (p: string) => p === '/' },
  { href: '/locks', label: 'Locks', match: (p: string) => p === '/locks' || p === '/lock' },
  { href: '/contention', label: 'Contention', match: (p: string) => p === '/contention' || p.startsWith('/contention/') },
  { href: '/scheduler', label: 'Scheduler', match: (p: string) => p === '/scheduler' },
  { href: '/audit', label: 'Audit', match: (p: string) => p === '/audit' },
];

export function NavLinks() {
  const pathname = usePathname();
  return (
    <nav aria-label="Main">
      <ul className="flex items-center gap-1">
        {LINKS.map((l) => {
          const active = l.match(pathname);
          return (
            <li key={l.href}>
              <Link
                href={l.href}
                aria-current={active ? 'page' : undefined}
                className={cn(
                  'inline-flex h-8 items-center rounded-md px-2.5 text-sm font-medium',
                  active ? 'bg-muted text-foreground' : 'text-muted-foreground hover:bg-muted hover:text-foreground',
                )}
              >
                {l.label}
              </Link>
            </li>
          );
        })}
      </ul>
    </nav>
  );
}
