#include "auth/status.h"

namespace mcpgate::auth {

std::string_view auth_status_name(AuthStatus status) {
  switch (status) {
    case AuthStatus::Ok: return "ok";
    case AuthStatus::TokenMissing: return "token_missing";
    case AuthStatus::TokenMalformed: return "token_malformed";
    case AuthStatus::HeaderInvalid: return "header_invalid";
    case AuthStatus::AlgorithmNotAllowed: return "algorithm_not_allowed";
    case AuthStatus::TypeNotAllowed: return "type_not_allowed";
    case AuthStatus::KeyNotFound: return "key_not_found";
    case AuthStatus::KeyAlgorithmMismatch: return "key_algorithm_mismatch";
    case AuthStatus::SignatureInvalid: return "signature_invalid";
    case AuthStatus::Expired: return "expired";
    case AuthStatus::NotYetValid: return "not_yet_valid";
    case AuthStatus::IssuedInFuture: return "issued_in_future";
    case AuthStatus::IssuerMismatch: return "issuer_mismatch";
    case AuthStatus::AudienceMismatch: return "audience_mismatch";
    case AuthStatus::MissingClaim: return "missing_claim";
    case AuthStatus::ClaimInvalid: return "claim_invalid";
    case AuthStatus::KeysUnavailable: return "keys_unavailable";
    case AuthStatus::IdpUnavailable: return "idp_unavailable";
    case AuthStatus::TokenInactive: return "token_inactive";
    case AuthStatus::TokenRejected: return "token_rejected";
    case AuthStatus::InsufficientScope: return "insufficient_scope";
    case AuthStatus::InternalError: return "internal_error";
  }
  return "internal_error";  // an out-of-range value is a bug: report it as one
}

bool is_token_fault(AuthStatus status) {
  switch (status) {
    case AuthStatus::TokenMalformed:
    case AuthStatus::HeaderInvalid:
    case AuthStatus::AlgorithmNotAllowed:
    case AuthStatus::TypeNotAllowed:
    case AuthStatus::KeyAlgorithmMismatch:
    case AuthStatus::SignatureInvalid:
    case AuthStatus::Expired:
    case AuthStatus::IssuerMismatch:
    case AuthStatus::AudienceMismatch:
    case AuthStatus::MissingClaim:
    case AuthStatus::ClaimInvalid:
      return true;
    default:
      return false;
  }
}

std::string_view auth_status_description(AuthStatus status) {
  switch (status) {
    case AuthStatus::Ok: return "The access token is valid";
    case AuthStatus::TokenMissing: return "No access token was provided";
    case AuthStatus::TokenMalformed: return "The access token is malformed";
    case AuthStatus::HeaderInvalid: return "The access token header is invalid";
    case AuthStatus::AlgorithmNotAllowed: return "The access token signing algorithm is not allowed";
    case AuthStatus::TypeNotAllowed: return "The token is not an access token";
    case AuthStatus::KeyNotFound: return "The access token signing key is unknown";
    case AuthStatus::KeyAlgorithmMismatch: return "The access token signing key does not match its algorithm";
    case AuthStatus::SignatureInvalid: return "The access token signature is invalid";
    case AuthStatus::Expired: return "The access token expired";
    case AuthStatus::NotYetValid: return "The access token is not valid yet";
    case AuthStatus::IssuedInFuture: return "The access token was issued in the future";
    case AuthStatus::IssuerMismatch: return "The access token issuer is not accepted";
    case AuthStatus::AudienceMismatch: return "The access token was not issued for this resource";
    case AuthStatus::MissingClaim: return "The access token lacks a required claim";
    case AuthStatus::ClaimInvalid: return "The access token has an invalid claim";
    case AuthStatus::KeysUnavailable: return "The signing keys of the authorization server are unavailable";
    case AuthStatus::IdpUnavailable: return "The authorization server is unavailable";
    case AuthStatus::TokenInactive: return "The access token is not active";
    case AuthStatus::TokenRejected: return "The access token was rejected";
    case AuthStatus::InsufficientScope: return "The access token lacks a required scope";
    case AuthStatus::InternalError: return "The access token could not be verified";
  }
  return "The access token could not be verified";
}

}  // namespace mcpgate::auth
