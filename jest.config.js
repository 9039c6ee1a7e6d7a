/** Jest 30 with @swc/jest: compiles TypeScript without type checking (npm test runs tsc first). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j|mj)s$': ['@swc/jest'] },
  // @middy/* ships ESM only; let the transform compile it.
  transformIgnorePatterns: ['/node_modules/(?!(@middy)/)'],
  testTimeout: 30000,
  setupFiles: ['<rootDir>/test/setup-env.ts'],
};
