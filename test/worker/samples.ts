/** Sample configs for the worker tests: a minimal one, a busy one, and one shaped like the seed article's. */
import { parseConfig, type Config } from '../../lib/config';

export const MINIMAL = `
deployment: ci
gitlab: { url: "https://gitlab.example.com" }
pools:
  - name: default
    runUntagged: true
    worker:
      instanceTypes: [m6i.large]
      subnets: [subnet-0abc123]
      ami: ami-0123456789abcdef0
`;

export const FULL = `
deployment: acme-ci
region: eu-west-1
ssmPrefix: /acme/ci
gitlab:
  url: "https://gitlab.acme.example/"
concurrent: 40
pools:
  - name: docker-privileged
    tags: [docker, dind]
    runnerTokenParameter: /acme/ci/tokens/dind
    limit: 20
    IdleCount: 2
    IdleTime: 1800
    MaxBuilds: 10
    jobTimeout: 7200
    autoscaling:
      - Periods: ["* * 9-17 * * mon-fri *"]
        Timezone: Europe/Berlin
        IdleCount: 5
        IdleTime: 3600
    worker:
      instanceTypes: [m6i.xlarge, m5.xlarge, m6a.xlarge, c6i.2xlarge]
      subnets: [subnet-0a1, subnet-0b2, subnet-0c3]
      ami: resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64
      bootTimeout: 900
      docker:
        image: "docker:27-cli"
        privileged: true
        volumes: ["/certs/client", "/cache", "/var/run/docker.sock:/var/run/docker.sock", "/srv/o'brien \\"data\\":/data:ro"]
      cache:
        shared: true
        bucketName: acme-ci-runner-cache
  - name: arm
    tags: [arm64]
    IdleTime: 0
    worker:
      instanceTypes: [m7g.large, c7g.xlarge]
      subnets: [subnet-0d4]
      ami: resolve:ssm:/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id
      market: on-demand
      docker:
        image: "ubuntu:24.04"
        disableCache: true
      cache: { shared: false }
`;

/** Like the seed article's docker+machine setup: spot, off-peak idle settings, S3 cache. */
export const SEED_LIKE = `
deployment: seed
region: us-east-1
gitlab: { url: "https://gitlab.com" }
concurrent: 10
pools:
  - name: spot
    runUntagged: true
    tags: [aws, spot]
    limit: 10
    IdleCount: 1
    IdleTime: 1800
    MaxBuilds: 100
    autoscaling:
      - Periods: ["* * 0-9,18-23 * * mon-fri *", "* * * * * sat,sun *"]
        Timezone: UTC
        IdleCount: 0
        IdleTime: 600
    worker:
      instanceTypes: [m5.large, m5a.large, m6i.large]
      subnets: [subnet-0123abcd]
      maxPrice: 0.05
      ami: ami-0abcdef1234567890
      rootVolumeSize: 50
      docker:
        image: "alpine:latest"
        privileged: true
        volumes: ["/cache"]
      cache:
        shared: true
        bucketName: gitlab-runner-cache-bucket
`;

export const SAMPLES: Record<string, Config> = {
  minimal: parseConfig(MINIMAL, 'minimal'),
  full: parseConfig(FULL, 'full'),
  seed: parseConfig(SEED_LIKE, 'seed'),
};
