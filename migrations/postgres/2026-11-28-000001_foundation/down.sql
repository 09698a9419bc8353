DROP TABLE login_attempts;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
