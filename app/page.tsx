import { HealthStatus } from '@/components/health-status';
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from '@/components/ui/card';

export default function HomePage() {
  return (
    <div className="space-y-8">
      <div className="space-y-2">
        <h1 className="text-3xl font-semibold tracking-tight">Lock console</h1>
        <p className="max-w-2xl text-muted-foreground">
          Live view of the distributed locks held in your Redis, ZooKeeper, etcd, DynamoDB and
          embedded SQLite backends.
        </p>
      </div>
      <Card className="max-w-md">
        <CardHeader>
          <CardTitle>Status</CardTitle>
          <CardDescription>Whether this console&apos;s API answers.</CardDescription>
        </CardHeader>
        <CardContent>
          <HealthStatus />
        </CardContent>
      </Card>
    </div>
  );
}
